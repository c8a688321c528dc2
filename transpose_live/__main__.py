from transpose_live.cli.app import main

main()
