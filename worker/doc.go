// Package worker is the agent that runs on every host: it takes jobs from
// its cluster's queue while it has free slots, keeps their leases alive,
// runs them through a Runtime, streams their logs, enforces timeouts and
// cancellations, and reports every status change as an event. It knows the
// queue only through the small interfaces declared here.
package worker
