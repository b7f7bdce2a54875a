package server

import (
	"fmt"
	"os"
)

// warnStoreMode warns, at start, of a store every local user may read:
// it holds every run's environment and the webhooks' secrets. A new store
// is its owner's alone (storage.Open), but one an older gantry made keeps
// SQLite's 0644, and nothing else would tell its operator.
func (s *Server) warnStoreMode() {
	path := s.db.Path()
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o004 == 0 {
		return
	}
	s.cfg.log.Warn().Str("store", path).Str("mode", fmt.Sprintf("%#o", fi.Mode().Perm())).
		Msg("every local user may read the store, which holds every run's environment and the webhooks' secrets: " +
			"stop the server and chmod 600 " + path + "*")
}
