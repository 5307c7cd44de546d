package admin

import (
	"context"
	"fmt"

	"tradeunit"
	"tradeunit/routing"
)

// SetMerchantPartition maps a merchant's new orders to a partition, which
// must exist (have a unit or a policy). Its existing orders stay where they
// are: they are routed by their order numbers.
func (a *Admin) SetMerchantPartition(ctx context.Context, mchid, partition string) (*routing.Table, error) {
	if err := tradeunit.ValidateMchid(mchid); err != nil {
		return nil, err
	}
	return a.update(ctx, fmt.Sprintf("merchant set-partition %s %s", mchid, partition), func(t *routing.Table) error {
		if t.Merchants == nil {
			t.Merchants = map[string]string{}
		}
		if partition == routing.DefaultPartition {
			delete(t.Merchants, mchid)
		} else {
			t.Merchants[mchid] = partition
		}
		return nil // the table's validation checks that the partition exists
	})
}
