"""``auditor serve`` and ``auditor mcp``: read-only access to the evidence store for
OIDC-identified callers, people, automations and AI agents alike.

The served schema is the collection schema (``auditor/schema``) resolved from a stored
observation, plus the store's own additions (``schema``). Modules, in the order a request meets
them: ``audit`` (one audit line per request), ``request`` (an untrusted body made a GraphQL
request), ``service`` (the transport-independent core: ``auth`` verifies the bearer token,
``policy`` turns its claims into a ``Scope``, ``fairness`` admits it per identity, ``limits``
checks depth, cost and tokens and carries the deadline), ``evidence`` (observations from the
store, indexed and filtered by scope at the data layer), ``evaluation`` (control evaluations in
child processes, cached, bounded by deadlines; ``findings`` is what they return), ``schema``
(the served schema and its execution), ``app`` (the HTTP application), ``mcp`` (the Model
Context Protocol server), ``cli`` (the commands).
"""
