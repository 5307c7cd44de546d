package bench

import (
	"context"
	"fmt"
	"slices"
)

// DirectoryRound is one round of the directory's cost: the full path
// without the key directory and with it, measured back to back.
type DirectoryRound struct {
	Without    Layer   `json:"without"`
	With       Layer   `json:"with"`
	Throughput float64 `json:"throughput"` // orders/s with over without
	CPU        float64 `json:"cpu"`        // server CPU per order with over without
}

// Spread is the median and range of a figure over rounds.
type Spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

func spreadOf(v []float64) Spread {
	if len(v) == 0 {
		return Spread{}
	}
	s := slices.Sorted(slices.Values(v))
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Spread{Median: m, Min: s[0], Max: s[len(s)-1]}
}

// DirectoryCost is what the key directory costs creates at one client
// count, over rounds.
type DirectoryCost struct {
	Clients    int              `json:"clients"`
	Rounds     []DirectoryRound `json:"rounds"`
	Throughput Spread           `json:"throughput"`
	CPU        Spread           `json:"cpu"`
}

// Directory measures, in one run, creates through the full path (proxy and
// unit processes) with the key directory (its reservation and commit
// writes on a shard process with its own storage, batched by group commit)
// against the same path with the proxy skipping it. The two are measured
// back to back in each round, in alternating order so that neither always
// runs on the warmer machine; each round's ratio is taken within the round.
func Directory(ctx context.Context, env *Env, m Measurement, clients []int, rounds int) ([]DirectoryCost, error) {
	var out []DirectoryCost
	for _, c := range clients {
		m := m
		m.Clients = c
		cost := DirectoryCost{Clients: c}
		var tput, cpu []float64
		for i := 0; i < rounds; i++ {
			var r DirectoryRound
			order := []DirectoryMode{WithoutDirectory, WithDirectory}
			if i%2 == 1 {
				slices.Reverse(order)
			}
			for _, dir := range order {
				name, layer := "full, with directory", &r.With
				if dir == WithoutDirectory {
					name, layer = "full, without directory", &r.Without
				}
				var err error
				if *layer, err = measureFull(ctx, env, fmt.Sprintf("round %d: %s", i+1, name), dir, Batched, m); err != nil {
					return nil, err
				}
			}
			if r.Without.OrdersPerSec > 0 {
				r.Throughput = r.With.OrdersPerSec / r.Without.OrdersPerSec
			}
			if base := serverCPU(r.Without.CPUPerOrder); base > 0 {
				r.CPU = serverCPU(r.With.CPUPerOrder) / base
			}
			tput, cpu = append(tput, r.Throughput), append(cpu, r.CPU)
			cost.Rounds = append(cost.Rounds, r)
		}
		cost.Throughput, cost.CPU = spreadOf(tput), spreadOf(cpu)
		out = append(out, cost)
	}
	return out, nil
}
