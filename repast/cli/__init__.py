"""The `repast` command: one module per group of commands (main, feast_commands, ui_command),
what they share (common), how help is shown (help_format) and `repast init`'s sample (scaffold).
The entry point is `repast.cli.main:run`."""
