package client

import "time"

// SetWaitHooks makes Wait ask the server every poll and call afterRead
// once its first read found the run not ended, until the test ends.
func SetWaitHooks(cleanup func(func()), poll time.Duration, afterRead func(runID string)) {
	oldPoll, oldHook := waitPoll, testHookWaitRead
	waitPoll, testHookWaitRead = poll, afterRead
	cleanup(func() { waitPoll, testHookWaitRead = oldPoll, oldHook })
}
