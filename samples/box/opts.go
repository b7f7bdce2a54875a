package main

import (
	"fmt"
	"strings"
)

// getopt parses POSIX-style short options: boolean letters in flags, letters
// taking a value in valued ("-n 5", "-n5"). Letters may be grouped ("-rf").
// Parsing stops at "--", "-" or the first operand. It returns the options
// seen (booleans map to "") and the operands.
func getopt(args []string, flags, valued string) (map[byte]string, []string, error) {
	opts := make(map[byte]string)
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			switch {
			case strings.IndexByte(flags, c) >= 0:
				opts[c] = ""
			case strings.IndexByte(valued, c) >= 0:
				if j+1 < len(a) {
					opts[c] = a[j+1:]
				} else if i+1 < len(args) {
					i++
					opts[c] = args[i]
				} else {
					return nil, nil, usageError(fmt.Sprintf("option -%c needs a value", c))
				}
				j = len(a)
			default:
				return nil, nil, usageError(fmt.Sprintf("unknown option -%c", c))
			}
		}
	}
	return opts, args[i:], nil
}

// has reports whether the boolean option c was given.
func has(opts map[byte]string, c byte) bool {
	_, ok := opts[c]
	return ok
}
