"""``auditor serve``: read-only GraphQL over the evidence store, for OIDC-identified callers.

The store keeps the *results of the stored queries*, not Bitbucket's REST responses, so the
Bitbucket-facing schema of ``auditor/schema`` (whose resolvers call REST loaders) is not served
here. ``schema`` is a read-only graphene schema over the evidence contract (``auditor.evidence``
tables), reusing the Bitbucket schema's type and field names where they correspond.

Modules, in the order a request meets them: ``auth`` (bearer token → verified claims),
``policy`` (claims → ``Scope``), ``limits`` (depth, cost and token limits, deadline),
``evidence`` (observations from the store, indexed and filtered by scope at the data layer),
``schema`` (types and resolvers), ``app`` (the Starlette application and the audit trail),
``cli`` (the command).
"""
