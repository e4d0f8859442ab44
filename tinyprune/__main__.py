from tinyprune.cli import console_main

console_main()
