package audit

import (
	"context"
	"time"
)

// VerifySettle is Verify with a shorter wait for a file that ends before
// the store, so that tests of a removed last line do not take a second.
func VerifySettle(ctx context.Context, st Store, path string, settle time.Duration) (Report, error) {
	return verify(ctx, st, path, settle, VerifyOptions{})
}

// VerifySettleWith is VerifyWith with a shorter wait.
func VerifySettleWith(ctx context.Context, st Store, path string, settle time.Duration, opts VerifyOptions) (Report, error) {
	return verify(ctx, st, path, settle, opts)
}
