package main

import "github.com/rogpeppe/go-internal/testscript"

func scriptCmds() map[string]func(*testscript.TestScript, bool, []string) {
	return map[string]func(*testscript.TestScript, bool, []string){
		"exits": cmdExits,
	}
}
