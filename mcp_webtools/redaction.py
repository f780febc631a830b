"""The one place that knows which values are secret, and hides them.

Everything the server shows a person or a model (logs, error texts, dry-run output, tool
listings) passes through a `Redactor` built from the loaded definitions.

Secrets can also turn up while running (a token an auth flow fetched): `Redactor.learn` puts them
in a `LearnedSecrets`, an append-only set shared by every redactor built from the same toolset and
by the log filter (which combines those redactors). Each of them looks at the set when used, so a
secret learned in the middle of a call is hidden in that call's result, audit record and log lines.

A secret that belongs to one call only (a caller's own credential forwarded upstream, forwarding.py)
must not join that shared set: it would be hidden, but also kept for the life of the process and
matched in every other caller's text. `hide_in_this_call` puts it in the `CallSecrets` of the call
running in this context instead (`call_secrets()`, opened by `calls.ToolCalls` around each call).
Every `Redactor` also masks the current call's secrets, so that call's result, error, audit record,
log lines and spans hide the value; other calls, in other contexts, never see it, and it is gone
with the call's context.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from urllib.parse import quote, quote_plus

__all__ = [
    "MASK",
    "MIN_SECRET_LENGTH",
    "CallSecrets",
    "LearnedSecrets",
    "Redactor",
    "RedactingFilter",
    "call_secrets",
    "configured_secrets",
    "hide_in_this_call",
    "record_fields",
    "secret_encodings",
    "secret_header_values",
]

MASK = "***"
# Shorter values cannot be hidden without mangling ordinary text ("1", "on"); they are not
# secrets worth the name, and docs/configuration.md and SECURITY.md say so.
MIN_SECRET_LENGTH = 4

# Headers whose configured values are plain protocol settings, not credentials.
NON_SECRET_HEADERS = frozenset(
    {
        "accept",
        "accept-encoding",
        "accept-language",
        "cache-control",
        "content-language",
        "content-type",
        "user-agent",
    }
)


def secret_header_values(headers: Iterable[tuple[str, str]]) -> list[str]:
    """The configured header values to treat as secrets (all but plain protocol headers)."""
    return [value for name, value in headers if name.lower() not in NON_SECRET_HEADERS]


def configured_secrets(
    auth_token: str | None, headers: Iterable[tuple[str, str]], from_environment: Iterable[str] = ()
) -> set[str]:
    """Every value of one tool to hide: what its `${...}` references read, its token, its secret headers.

    The loader uses it on each entry, valid or not (to hide them in its errors), and the
    `Toolset` on each definition (to hide them while serving): one rule for both.
    """
    secrets = set(from_environment)
    if auth_token:
        secrets.add(auth_token)
    secrets.update(secret_header_values(headers))
    return secrets


class LearnedSecrets:
    """Secrets discovered while running: append-only, shared by the redactors that were given it.

    `variants` is replaced whole on each addition, never changed in place, so a redactor can tell
    it has grown by identity alone (one comparison per use) and never sees half an update.
    """

    def __init__(self) -> None:
        self.variants: frozenset[str] = frozenset()

    def learn(self, *secrets: str) -> None:
        fresh = _variants(secrets) - self.variants
        if fresh:
            self.variants = self.variants | fresh


class CallSecrets:
    """The secrets of one call only: hidden by every `Redactor` used in that call's context, nowhere else."""

    def __init__(self) -> None:
        self.variants: frozenset[str] = frozenset()
        self.pattern: re.Pattern[str] | None = None

    def learn(self, *secrets: str) -> None:
        fresh = _variants(secrets) - self.variants
        if fresh:
            self.variants = self.variants | fresh
            self.pattern = _alternation(self.variants)


# The call running in this context (a task and the tasks it starts share the one object).
_THIS_CALL: ContextVar[CallSecrets | None] = ContextVar("mcp_webtools.call_secrets", default=None)


@contextmanager
def call_secrets() -> Iterator[CallSecrets]:
    """Open the current call's `CallSecrets` for the `with` block (or join the one already open).

    On leaving, the context no longer names them: nothing outside the call can reach the values.
    """
    current = _THIS_CALL.get()
    if current is not None:
        yield current
        return
    fresh = CallSecrets()
    token = _THIS_CALL.set(fresh)
    try:
        yield fresh
    finally:
        _THIS_CALL.reset(token)


def hide_in_this_call(*secrets: str) -> None:
    """Hide `secrets` in everything redacted for the current call, and only there.

    Outside `call_secrets()` there is no call to scope them to: refusing beats showing them.
    """
    current = _THIS_CALL.get()
    if current is None:
        raise RuntimeError("hide_in_this_call() outside call_secrets(): the value would not be hidden")
    current.learn(*secrets)


class Redactor:
    """Replaces every known secret value, its lowercase form and their common encodings, with `***`.

    `learned`: a `LearnedSecrets` to hide as well, as it grows (see the module docstring).
    """

    def __init__(self, secrets: Iterable[str] = (), learned: LearnedSecrets | None = None) -> None:
        self._own = _variants(secrets)
        self._learned: tuple[LearnedSecrets, ...] = (learned,) if learned is not None else ()
        self._compile()

    @property
    def learned(self) -> LearnedSecrets | None:
        """The shared set `learn` adds to (None until there is one)."""
        return self._learned[0] if self._learned else None

    def learn(self, *secrets: str) -> None:
        """Hide `secrets` from now on, here and in every redactor sharing this one's `LearnedSecrets`."""
        if not self._learned:
            self._learned = (LearnedSecrets(),)
        self._learned[0].learn(*secrets)
        self._compile()

    def _compile(self) -> None:
        self._seen = tuple(learned.variants for learned in self._learned)
        variants = self._own.union(*self._seen)
        self._secrets = variants
        self._pattern = _alternation(variants)

    def _current(self) -> re.Pattern[str] | None:
        """The pattern, recompiled first if a shared `LearnedSecrets` has grown since."""
        for learned, seen in zip(self._learned, self._seen, strict=True):
            if learned.variants is not seen:
                self._compile()
                break
        return self._pattern

    def __or__(self, other: Redactor) -> Redactor:
        """A redactor hiding the secrets of both (e.g. the tools' and the server's own token)."""
        combined = Redactor()
        combined._own = self._own | other._own
        combined._learned = (*self._learned, *(s for s in other._learned if s not in self._learned))
        combined._compile()
        return combined

    def __bool__(self) -> bool:
        call = _THIS_CALL.get()
        return self._current() is not None or (call is not None and call.pattern is not None)

    def __call__(self, text: str) -> str:
        if not text:
            return text
        call = _THIS_CALL.get()
        if call is not None and call.pattern is not None:
            text = call.pattern.sub(MASK, text)  # first: a call's secret may contain a configured one
        pattern = self._current()
        return pattern.sub(MASK, text) if pattern is not None else text

    def redact_cut(self, text: str) -> str:
        """Redact text that was cut off: a secret's beginning left at the very end is masked too.

        A body cut at a size cap can end in the middle of a secret, which no full match finds.
        """
        text = self(text)
        if not self or not text:
            return text
        call = _THIS_CALL.get()
        longest = 0
        for secret in self._secrets | (call.variants if call is not None else frozenset()):
            for size in range(min(len(secret) - 1, len(text)), longest, -1):
                if text.endswith(secret[:size]):
                    longest = size
                    break
        return text[: len(text) - longest] + MASK if longest else text

    def redact_json(self, value: object) -> object:
        """Redact every string inside a JSON-like value (keys included).

        A number whose digits are a secret becomes the string `***`: hiding it matters more
        than keeping its type.
        """
        return self._redact_json(value) if self else value

    def redact_fields(self, fields: dict[str, object]) -> dict[str, object]:
        """`redact_json` of each value of `fields` (a log record's structured fields), the emptiness checked once."""
        if not self:
            return fields
        return {key: self._redact_json(value) for key, value in fields.items()}

    def _redact_json(self, value: object) -> object:
        # Whether there is anything to hide is asked once by the callers above, not at every level
        # (it looks at the learned secrets each time): the audit line's fields pass here on every call.
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self(str(k)): self._redact_json(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._redact_json(v) for v in value]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # An int's JSON is its str(), without json.dumps' cost: the audit line's numbers pass here on every call.
            text = str(value) if type(value) is int else json.dumps(value)
            redacted = self(text)
            return value if redacted == text else redacted
        return value


def _alternation(variants: frozenset[str]) -> re.Pattern[str] | None:
    """One pattern matching any of `variants`; None for none."""
    # Longest first: a regex alternation takes the first branch that matches, so a secret
    # that contains another is masked whole rather than leaving its tail visible.
    ordered = sorted(variants, key=lambda s: (-len(s), s))
    return re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None


def _variants(secrets: Iterable[str]) -> frozenset[str]:
    """Every form of `secrets` to hide (see `secret_encodings`); values too short to hide are skipped."""
    variants: set[str] = set()
    for secret in secrets:
        if len(secret) < MIN_SECRET_LENGTH:
            continue
        forms = [secret]
        credential = secret.partition(" ")[2]
        if credential and len(credential) >= MIN_SECRET_LENGTH:
            forms.append(credential)  # "Bearer abc..." echoed back without its scheme
        # A host name from `${...}` comes back lowercased (URL parsers, DNS and TLS errors).
        forms += [form.lower() for form in forms if form.lower() != form]
        for form in forms:
            variants.update(secret_encodings(form))
    return frozenset(v for v in variants if len(v) >= MIN_SECRET_LENGTH)


def secret_encodings(secret: str) -> set[str]:
    """The forms in which an upstream or a log line may echo `secret`."""
    return {
        secret,
        quote(secret, safe=""),  # a URL query value or path segment
        quote(secret),  # a URL path, "/" left as is
        quote_plus(secret, safe=""),  # a form-encoded value, spaces as "+"
        json.dumps(secret, ensure_ascii=False)[1:-1],  # inside a JSON string
        json.dumps(secret)[1:-1],  # inside a JSON string, non-ASCII as \uXXXX
        json.dumps(secret).replace("/", "\\/")[1:-1],  # inside a JSON string, "/" escaped as "\/"
    }


# What every LogRecord has; anything else on a record came in through `extra=`.
# uvicorn's `color_message` repeats the message with terminal colours: noise in a log pipeline.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",
}


def record_fields(record: logging.LogRecord) -> dict[str, object]:
    """The structured fields a record carries (what was passed as `extra=`)."""
    return {key: value for key, value in vars(record).items() if key not in _STANDARD_ATTRIBUTES}


class RedactingFilter(logging.Filter):
    """A logging filter that redacts secrets from every record's final message and structured fields.

    The redactor is looked up on each record, so `add` and `hide` take effect at once without
    touching handlers. What it is given stays hidden: a reload adds the new toolset's redactor
    and keeps the old one's, since calls still running on the old toolset may log its secrets.
    """

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor if redactor is not None else Redactor()

    def add(self, redactor: Redactor) -> None:
        """Hide what `redactor` hides as well (a toolset's secrets, and those it learns later)."""
        self.redactor = self.redactor | redactor

    def hide(self, *secrets: str | None) -> None:
        """Hide these values as well (the server's own, e.g. the inbound token); None is skipped."""
        self.add(Redactor(secret for secret in secrets if secret))

    def filter(self, record: logging.LogRecord) -> bool:
        if self.redactor:
            try:
                message = record.getMessage()
            except Exception:  # noqa: BLE001 - a bad format string must not hide the secrets in it
                message = f"{record.msg} (arguments: {record.args!r})"
            record.msg = self.redactor(message)
            record.args = None
            # Structured fields (`extra=`) reach the JSON log format as they are: redact them too.
            for key, value in self.redactor.redact_fields(record_fields(record)).items():
                setattr(record, key, value)
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = self.redactor(record.exc_text)
            if record.stack_info:
                record.stack_info = self.redactor(record.stack_info)
        return True
