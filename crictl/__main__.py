from crictl.cli import main

main()
