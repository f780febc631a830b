"""A small in-memory sample API: the integration guide's CRM, shop, helpdesk and scheduler.

It exists so a newcomer can call every example tool in `config/` without an account anywhere.
Every route wants `Authorization: Bearer <token>` (the demo token), like a real API would.
"""

from __future__ import annotations

import copy
import hmac
import itertools
from datetime import date, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["DEFAULT_DEMO_TOKEN", "create_demo_api"]

DEFAULT_DEMO_TOKEN = "demo-secret-token"

CUSTOMERS: dict[str, dict[str, Any]] = {
    "CUST-12345": {
        "id": "CUST-12345",
        "name": "John Smith",
        "phone_number": "+15551234567",
        "email": "john.smith@example.com",
        "tier": "gold",
        "balance": 1250.5,
        "preferences": {"email_notifications": True, "sms_notifications": False, "preferred_contact_time": "morning"},
    },
    "CUST-98765": {
        "id": "CUST-98765",
        "name": "Layla Hassan",
        "phone_number": "+971501234567",
        "email": "layla.hassan@example.com",
        "tier": "silver",
        "balance": 80.0,
        "preferences": {"email_notifications": True, "sms_notifications": True, "preferred_contact_time": "evening"},
    },
}
ORDERS: dict[str, dict[str, Any]] = {
    "ORD-12345": {
        "order_id": "ORD-12345",
        "customer_id": "CUST-12345",
        "status": "shipped",
        "tracking_number": "1Z999AA10123456784",
        "estimated_delivery": "2024-01-18",
        "items": [{"product_id": "P-100", "name": "Wireless headset", "quantity": 1}],
        "total": 99.99,
    },
    "ORD-11111": {
        "order_id": "ORD-11111",
        "customer_id": "CUST-98765",
        "status": "delivered",
        "tracking_number": "1Z999AA10123456785",
        "estimated_delivery": "2024-01-10",
        "items": [{"product_id": "P-200", "name": "Phone case", "quantity": 2}],
        "total": 24.5,
    },
}


class _Store:
    """Mutable demo state, fresh per app instance so tests never share it."""

    def __init__(self) -> None:
        self.customers = copy.deepcopy(CUSTOMERS)
        self.orders = copy.deepcopy(ORDERS)
        self.tickets: dict[str, dict[str, Any]] = {}
        self.appointments: dict[str, dict[str, Any]] = {
            "APT-1001": {"appointment_id": "APT-1001", "slot_id": "SLOT-1", "status": "booked"}
        }
        self.ids = itertools.count(1002)


def create_demo_api(token: str = DEFAULT_DEMO_TOKEN) -> Starlette:
    store = _Store()
    expected = f"Bearer {token}".encode()

    def authorised(request: Request) -> bool:
        return hmac.compare_digest(request.headers.get("authorization", "").encode(), expected)

    def guarded(handler):
        async def endpoint(request: Request) -> Response:
            if not authorised(request):
                return JSONResponse({"error": "unauthorized"}, status_code=401)
            return await handler(request)

        return endpoint

    async def lookup_customer(request: Request) -> Response:
        body = await _json_body(request)
        phone = str(body.get("phone_number", ""))
        for customer in store.customers.values():
            if customer["phone_number"] == phone:
                orders = [o for o in store.orders.values() if o["customer_id"] == customer["id"]]
                return JSONResponse({"customer": customer, "orders": orders})
        return JSONResponse({"error": "not_found", "message": f"no customer with phone {phone}"}, status_code=404)

    async def update_customer(request: Request) -> Response:
        customer = store.customers.get(request.path_params["customer_id"])
        if customer is None:
            return JSONResponse({"error": "not_found"}, status_code=404)
        changes = await _json_body(request)
        customer["preferences"].update({k: v for k, v in changes.items() if k in customer["preferences"]})
        return JSONResponse({"customer_id": customer["id"], "preferences": customer["preferences"], "updated": True})

    async def get_order(request: Request) -> Response:
        order = store.orders.get(request.path_params["order_id"])
        if order is None:
            return JSONResponse({"error": "not_found", "message": "no such order"}, status_code=404)
        return JSONResponse(order)

    async def create_ticket(request: Request) -> Response:
        body = await _json_body(request)
        ticket_id = f"TCK-{next(store.ids)}"
        store.tickets[ticket_id] = {"ticket_id": ticket_id, "status": "open", **body}
        return JSONResponse(store.tickets[ticket_id], status_code=201)

    async def available_slots(request: Request) -> Response:
        service = request.query_params.get("service_type", "consultation")
        start = request.query_params.get("start_date") or date.today().isoformat()
        days = int(request.query_params.get("days_ahead", "7") or 7)
        try:
            first = date.fromisoformat(start)
        except ValueError:
            return JSONResponse({"error": "bad_request", "message": "start_date must be YYYY-MM-DD"}, status_code=400)
        slots = [
            {"slot_id": f"SLOT-{i + 1}", "date": (first + timedelta(days=i)).isoformat(), "time": t, "service": service}
            for i in range(min(days, 3))
            for t in ("10:00",)
        ]
        return JSONResponse({"available_slots": slots})

    async def book_appointment(request: Request) -> Response:
        body = await _json_body(request)
        appointment_id = f"APT-{next(store.ids)}"
        store.appointments[appointment_id] = {"appointment_id": appointment_id, "status": "booked", **body}
        return JSONResponse(
            {"appointment_id": appointment_id, "confirmation_code": f"CONF-{appointment_id[-4:]}"}, status_code=201
        )

    async def cancel_appointment(request: Request) -> Response:
        appointment = store.appointments.get(request.path_params["appointment_id"])
        if appointment is None:
            return JSONResponse({"error": "not_found", "message": "no such appointment"}, status_code=404)
        appointment["status"] = "cancelled"
        appointment["cancellation_reason"] = request.query_params.get("cancellation_reason")
        return JSONResponse(appointment)

    return Starlette(
        routes=[
            Route("/customers/lookup", guarded(lookup_customer), methods=["POST"]),
            Route("/customers/{customer_id}", guarded(update_customer), methods=["PATCH"]),
            Route("/orders/{order_id}", guarded(get_order), methods=["GET"]),
            Route("/tickets", guarded(create_ticket), methods=["POST"]),
            Route("/slots/available", guarded(available_slots), methods=["GET"]),
            Route("/appointments", guarded(book_appointment), methods=["POST"]),
            Route("/appointments/{appointment_id}", guarded(cancel_appointment), methods=["DELETE"]),
        ]
    )


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
