from xaibench.cli import main

main()
