// Package scheduler decides what runs next: it advances the DAGs of
// pipeline runs when their stages' runs end (starting, skipping and
// finishing stages) and fires pipelines on their cron schedules with their
// concurrency and misfire policies.
//
// It owns no storage and no queue. It declares the small interfaces it
// needs (Store, Runner, Publisher, ScheduleStore) and the server satisfies
// them. Every step is safe to repeat after a crash: stage runs are
// submitted with an idempotency key derived from (pipeline run, stage,
// array index), and scheduled pipeline runs with one derived from
// (schedule, scheduled time), so advancing a pipeline run or firing a
// schedule twice creates nothing twice.
package scheduler
