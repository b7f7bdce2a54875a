// Package storage owns gantry's SQLite database: its schema, kept as
// numbered migrations embedded in the binary, and the queries that read and
// write runs as jobs types.
//
// The server is the database's only writer. A DB therefore writes through
// one connection, so transactions never wait for each other inside SQLite,
// and reads through a separate pool, which WAL lets run beside the writer.
// Storage holds what happened to runs; whether a run's job is in the queue
// is recorded only as the last attempt marked published (see
// DB.MarkPublished and DB.Unpublished).
package storage
