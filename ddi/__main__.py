from ddi.cli import main

main()
