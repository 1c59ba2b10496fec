"""The technician page: diagnostics web UI, JSON API, /healthz and /metrics (docs/web.md).

    server.py   start_web(agent) → WebServer: AppRunner + TCPSite in the agent's loop
    app.py      build_app(): routes, middlewares, the shared WebContext
    security.py headers, sessions, CSRF, login rate limit, who may see and do what
    view.py     the agent as the page sees it: Protocols the agent satisfies (never agent.app)
    facts.py    what the pages and the API show, gathered from the agent as dataclasses
    pages/      one module per page (server-rendered HTML, works without JavaScript)
    api.py      the same facts as JSON under /api/; events.py: live updates (SSE)
    actions.py  the Tools (link test, Paytm test, re-check, resend); ports.py: ports list
    metrics.py  Prometheus text from a per-agent CollectorRegistry

It only reads engine and journal state, except for the Tools, which use the engine's
and the lanes' own entry points (recheck, deliver, link check).

Nothing is imported here: `agent.bundle` and `edc-agent show` read `agent.web.facts`
without loading the aiohttp app, and no module of the package imports the package itself.
"""
