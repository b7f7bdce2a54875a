package jobs

import "strings"

// Substitute replaces ${name} with the parameter's value. With refs it also
// replaces AWS Batch's Ref::name form (as Batch does in commands). "$${"
// stands for a literal "${". References to unknown parameters are left as
// written and returned in missing, each once.
func Substitute(s string, params map[string]string, refs bool) (out string, missing []string) {
	out, missing, _ = substitute(s, params, true, refs)
	return out, missing
}

// substitute is Substitute, the unknown Ref::name references apart in
// missingRefs. Without dollar, ${...} and $${ are plain text: only Ref::
// is a reference (see SubstituteRefs).
func substitute(s string, params map[string]string, dollar, refs bool) (out string, missing, missingRefs []string) {
	if !(dollar && strings.Contains(s, "${")) && !(refs && strings.Contains(s, "Ref::")) {
		return s, nil, nil
	}
	var b strings.Builder
	seen := map[string]bool{}
	miss := func(list *[]string, key, n string) {
		if !seen[key] {
			seen[key] = true
			*list = append(*list, n)
		}
	}
	for i := 0; i < len(s); {
		switch {
		case dollar && strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 3
		case dollar && strings.HasPrefix(s[i:], "${"):
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
					miss(&missing, "${"+name, name)
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
				if validParamName(name) {
					miss(&missingRefs, "Ref::"+name, name)
				}
				b.WriteString(s[i:j])
			}
			i = j
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), missing, missingRefs
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

// RefReferences returns the parameter names s, a command argument of a
// pipeline file, refers to with Ref::name, in order, each once.
func RefReferences(s string) []string {
	_, _, refs := substitute(s, nil, true, true)
	return refs
}

// RegisteredRefReferences is RefReferences for a command argument of a
// registered task definition, where ${...} is plain text (SubstituteRefs).
func RegisteredRefReferences(s string) []string {
	_, _, refs := substitute(s, nil, false, true)
	return refs
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

// SubstituteRefs returns a copy of td, a registered task definition that
// a pipeline stage runs, with parameters substituted for Ref::name in the
// containers' commands, as AWS Batch fills a job definition's. Nothing
// else changes: a registered definition also runs outside pipelines, and
// its ${...} are the shell's. Unknown references are left as written.
func SubstituteRefs(td TaskDefinition, params map[string]string) TaskDefinition {
	out := td
	out.ContainerDefinitions = make([]ContainerDefinition, len(td.ContainerDefinitions))
	for i, c := range td.ContainerDefinitions {
		if c.Command != nil {
			cmd := make([]string, len(c.Command))
			for j, a := range c.Command {
				cmd[j], _, _ = substitute(a, params, false, true)
			}
			c.Command = cmd
		}
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
