"""One module per `syncline` subcommand; `runtime.cli` wires them to the command line."""
