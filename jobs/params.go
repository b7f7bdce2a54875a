package jobs

import "strings"

// Substitute replaces ${name} with the parameter's value. With refs it also
// replaces AWS Batch's Ref::name form (as Batch does in commands). "$${"
// stands for a literal "${". References to unknown parameters are left as
// written and returned in missing, each once.
func Substitute(s string, params map[string]string, refs bool) (out string, missing []string) {
	if !strings.Contains(s, "${") && !(refs && strings.Contains(s, "Ref::")) {
		return s, nil
	}
	var b strings.Builder
	seen := map[string]bool{}
	miss := func(n string) {
		if !seen[n] {
			seen[n] = true
			missing = append(missing, n)
		}
	}
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				b.WriteString(s[i:])
				i = len(s)
				continue
			}
			name := s[i+2 : i+2+end]
			if v, ok := params[name]; ok && validParamName(name) {
				b.WriteString(v)
			} else {
				if validParamName(name) {
					miss(name)
				}
				b.WriteString(s[i : i+3+end])
			}
			i += 3 + end
		case refs && strings.HasPrefix(s[i:], "Ref::"):
			j := i + 5
			for j < len(s) && isParamChar(s[j]) {
				j++
			}
			name := s[i+5 : j]
			if v, ok := params[name]; ok && name != "" {
				b.WriteString(v)
			} else {
				b.WriteString(s[i:j])
			}
			i = j
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), missing
}

func isParamChar(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// References returns the parameter names s refers to with ${name}, in
// order, each once.
func References(s string) []string {
	_, missing := Substitute(s, nil, false)
	return missing
}

// SubstituteOverrides returns a copy of o with parameters substituted into
// commands (${name} and Ref::name) and environment values (${name}).
func SubstituteOverrides(o *Overrides, params map[string]string) *Overrides {
	if o == nil {
		return nil
	}
	out := &Overrides{ContainerOverrides: make([]ContainerOverride, len(o.ContainerOverrides))}
	for i, co := range o.ContainerOverrides {
		co.Command = substAll(co.Command, params)
		co.Environment = substEnv(co.Environment, params)
		out.ContainerOverrides[i] = co
	}
	return out
}

// SubstituteTask returns a copy of td with parameters substituted into the
// containers' commands and environment values.
func SubstituteTask(td TaskDefinition, params map[string]string) TaskDefinition {
	out := td
	out.ContainerDefinitions = make([]ContainerDefinition, len(td.ContainerDefinitions))
	for i, c := range td.ContainerDefinitions {
		c.Command = substAll(c.Command, params)
		c.Environment = substEnv(c.Environment, params)
		out.ContainerDefinitions[i] = c
	}
	return out
}

func substAll(args []string, params map[string]string) []string {
	if args == nil {
		return nil
	}
	out := make([]string, len(args))
	for i, a := range args {
		out[i], _ = Substitute(a, params, true)
	}
	return out
}

func substEnv(env []KeyValue, params map[string]string) []KeyValue {
	if env == nil {
		return nil
	}
	out := make([]KeyValue, len(env))
	for i, kv := range env {
		kv.Value, _ = Substitute(kv.Value, params, false)
		out[i] = kv
	}
	return out
}
