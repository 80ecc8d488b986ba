from dasha.cli import main

main()
