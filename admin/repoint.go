package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"tradeunit/replication"
	"tradeunit/routing"
)

// RepointStorage re-points the replicas of entry ref that replicate from
// another server than its primary (the last step of a failover, left
// undone when the failover stopped after its remap: its controller or
// operator killed) and returns their servers. Until one acknowledges, the
// primary takes no changes. A replica that cannot be read is left for the
// next call; one that is not a replica at all is an error, not touched.
// Errors: PARAM_ERROR for an entry without a primary or not on MariaDB.
func (a *Admin) RepointStorage(ctx context.Context, ref routing.StorageRef, o FailoverOptions) ([]string, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	o.passwords = a.Passwords
	st, _, err := a.entryOf(ref)
	if err != nil {
		return nil, err
	}
	if !st.HasPrimary() {
		return nil, paramErrorf("%s has no primary to re-point its replicas to", ref)
	}
	if _, err := o.serverDSN(st.Primary); err != nil {
		return nil, paramErrorf("%s: %v", ref, err)
	}
	src, err := o.source(st.Primary)
	if err != nil {
		return nil, err
	}
	var done []string
	var errs []error
	for _, c := range o.inspect(ctx, st.Replicas) {
		switch r := c.Status.Replica; {
		case c.Err != nil:
			continue
		case r == nil:
			errs = append(errs, fmt.Errorf("%s: %s is not a replica (%s): not re-pointed", ref, c.Name, c.Status.Role()))
		case net.JoinHostPort(r.SourceHost, strconv.Itoa(r.SourcePort)) == st.Primary.Addr:
		default:
			d := chosenDSN(st.Replicas, c)
			if err := replication.Repoint(ctx, o.mustServerDSN(d), src); err != nil {
				errs = append(errs, fmt.Errorf("%s: re-point %s: %w", ref, c.Name, err))
				continue
			}
			done = append(done, c.Name)
		}
	}
	return done, errors.Join(errs...)
}
