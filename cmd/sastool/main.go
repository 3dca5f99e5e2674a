package main

import "github.com/hubkit/hubkit/internal/cli"

func main() { cli.Main(run) }
