"""`frontdesk run`: the server a browser (or Pipecat's eval harness) talks to, with hot reload.

    app.server.app     create_app(): routes, call tasks, draining
    app.server.reload  BotSource: bot.yaml + flows re-read for each new call
    app.server.cli     add_run_command(): the `run` subcommand
    app.server.workers `--workers N`: the parent binding the socket and looking after N workers
    app.server.worker  one worker process: the app on the shared socket and a private one
    app.server.peers   a worker's view of the others: owned ids, forwarding, the shared board
"""
