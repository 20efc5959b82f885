from ragkeep.cli.app import main

main()
