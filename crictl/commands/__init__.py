"""One module per crictl command or command family; ``crictl.cli.COMMANDS`` says which holds which."""
