"""`frontdesk run`: the server a browser (or Pipecat's eval harness) talks to, with hot reload.

    app.server.app     create_app(): routes, call tasks, draining
    app.server.reload  BotSource: bot.yaml + flows re-read for each new call
    app.server.cli     add_run_command(): the `run` subcommand
"""
