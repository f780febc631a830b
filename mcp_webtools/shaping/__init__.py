"""Turning an upstream answer into what a model reads: `responseFields`, `flatten`, result budgets and
`outputSchema`."""
