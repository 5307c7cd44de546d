package bench

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// PrintResult writes a run's figures as a human table.
func PrintResult(w io.Writer, r *Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "op\trequests\terrors\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\tmax ms\t\n")
	ops := make([]string, 0, len(r.PerOp))
	for op := range r.PerOp {
		ops = append(ops, string(op))
	}
	sort.Strings(ops)
	row := func(name string, n, e int64, l Latency) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", name, n, e, l.P50, l.P90, l.P99, l.P999, l.Max)
	}
	for _, op := range ops {
		o := r.PerOp[Op(op)]
		row(op, o.Requests, o.Errors, o.Latency)
	}
	row("all", r.Requests, r.Errors, r.Latency)
	tw.Flush()
	fmt.Fprintf(w, "\n%s loop, %d clients", r.Mode, r.Concurrency)
	if r.Rate > 0 {
		fmt.Fprintf(w, ", %.0f/s offered", r.Rate)
	}
	fmt.Fprintf(w, ", %.1f s: %.0f requests/s, %.0f orders created/s, %d create retries\n",
		r.Seconds, r.Throughput, r.CreatesPerSec, r.CreateRetries)
	if len(r.ErrorsByCode) > 0 {
		var parts []string
		for _, c := range r.Codes() {
			parts = append(parts, fmt.Sprintf("%s=%d", c, r.ErrorsByCode[c]))
		}
		fmt.Fprintf(w, "errors: %s\n", strings.Join(parts, " "))
	}
	if v := r.Verification; v != nil {
		status := "OK"
		if !v.OK() {
			status = "FAILED"
		}
		fmt.Fprintf(w, "verification %s: %d orders read back, %d lost, %d mismatched, %d unreadable\n",
			status, v.Orders, v.Lost, v.Mismatched, v.Unreadable)
		for _, ex := range v.Examples {
			fmt.Fprintf(w, "  %s\n", ex)
		}
	}
}

// PrintBaseline writes a baseline comparison as a human table: every
// round's measurements, then each client count's medians and ranges, for
// creates and for each other operation measured.
func PrintBaseline(w io.Writer, storage string, rows []BaselineRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "storage\tclients\tround\tpath\top\tper s\tp50 ms\tp99 ms\tvs limit\tsteal\tCPU µs/op\t\n")
	for _, r := range rows {
		for i, rd := range r.Rounds {
			for _, l := range []Layer{rd.Storage, rd.Direct, rd.Full, rd.Unbatched} {
				line := func(op Op, perSec, limit float64, lat Latency, steal float64, cpu map[string]float64) {
					fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%.0f\t%.2f\t%.2f\t%.0f%%\t%.0f%%\t%s\t\n", storage, r.Clients, i+1, l.Name, op,
						perSec, lat.P50, lat.P99, 100*perSec/limit, 100*steal, cpuList(cpu))
				}
				line(OpCreate, l.OrdersPerSec, rd.Storage.OrdersPerSec, l.Latency, l.Steal, l.CPUPerOrder)
				for _, o := range l.Ops {
					limit := 0.0
					if lo := rd.Storage.Op(o.Op); lo != nil {
						limit = lo.PerSec
					}
					line(o.Op, o.PerSec, limit, o.Latency, o.Steal, o.CPUPerOp)
				}
			}
		}
	}
	tw.Flush()
	for _, r := range rows {
		fmt.Fprintf(w, "%d clients, %d rounds (median, range), full path with the directory:\n", r.Clients, len(r.Rounds))
		summary := func(op Op, s Spreads) {
			fmt.Fprintf(w, "  %-9s full/limit %s, direct/limit %s, proxy adds %s to a direct call's p50, full p99/limit p99 %s, "+
				"server CPU %.0f µs (%.0f–%.0f), vs batching off: CPU %s, throughput %s\n",
				op, pct(s.FullOverLimit), pct(s.DirectOverLimit), pct(s.ProxyP50Overhead), pct(s.FullP99OverLimit),
				s.ServerCPU.Median, s.ServerCPU.Min, s.ServerCPU.Max, pct(s.CPUOverUnbatched), pct(s.FullOverUnbatched))
		}
		summary(OpCreate, r.Spreads)
		for _, op := range BaselineOps {
			if s, ok := r.ByOp[op]; ok {
				summary(op, s)
			}
		}
		fmt.Fprintf(w, "  creates: %.0f cores for %d orders/s at the median server CPU\n", r.CoresForPeak, AlipayPeak)
	}
}

// pct formats a spread of ratios as percentages: "57% (55–59%)".
func pct(s Spread) string {
	return fmt.Sprintf("%.0f%% (%.0f–%.0f%%)", 100*s.Median, 100*s.Min, 100*s.Max)
}

// PrintDirectory writes the directory's cost as a human table: every
// round's two measurements, then each client count's median and range.
func PrintDirectory(w io.Writer, storage string, costs []DirectoryCost) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "storage\tclients\tround\tdirectory\torders/s\tp50 ms\tp99 ms\tsteal\tserver CPU µs/order\tCPU µs/order\t\n")
	for _, c := range costs {
		for i, r := range c.Rounds {
			for _, l := range []struct {
				name string
				l    Layer
			}{{"without", r.Without}, {"with", r.With}} {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%.0f\t%.2f\t%.2f\t%.0f%%\t%.0f\t%s\t\n", storage, c.Clients, i+1, l.name,
					l.l.OrdersPerSec, l.l.Latency.P50, l.l.Latency.P99, 100*l.l.Steal, serverCPU(l.l.CPUPerOrder), cpuList(l.l.CPUPerOrder))
			}
		}
	}
	tw.Flush()
	for _, c := range costs {
		fmt.Fprintf(w, "%d clients, %d rounds (median, range): with the directory, throughput %s of without, server CPU per order %s\n",
			c.Clients, len(c.Rounds), pct(c.Throughput), pct(c.CPU))
	}
}

func cpuList(m map[string]float64) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.0f", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// PrintScaling writes a scaling curve as a human table.
func PrintScaling(w io.Writer, points []ScalingPoint) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "units\torders/s\tp99 ms\tefficiency\tCPU busy\terrors\t\n")
	for _, p := range points {
		fmt.Fprintf(tw, "%d\t%.0f\t%.2f\t%.0f%%\t%.0f%%\t%d\t\n", p.Units, p.OrdersPerSec, p.P99, 100*p.Efficiency, 100*p.CPUBusy, p.Errors)
	}
	tw.Flush()
}
