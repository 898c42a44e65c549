"""The application layer: services every surface (CLI, webhook, gateway, REPL, dashboard) calls. They take
plain arguments, return typed results and print nothing."""
