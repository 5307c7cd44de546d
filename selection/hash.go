package selection

import (
	"math"

	"tradeunit"
)

// FNV-1a, 64 bits.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// hashKey is 64-bit FNV-1a.
func hashKey(key string) uint64 { return fnvAdd(fnvOffset, key) }

// hashKey2 is hashKey(a + "/" + b) without building the string.
func hashKey2(a, b string) uint64 {
	h := fnvAdd(fnvOffset, a)
	h = (h ^ '/') * fnvPrime
	return fnvAdd(h, b)
}

func fnvAdd(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// keyHash is what the rendezvous hash takes from the order key: two
// independent, well-mixed 64-bit hashes of it, b odd.
type keyHash struct{ a, b uint64 }

// rendezvousKey derives a key's keyHash from its FNV hash (hashKey).
func rendezvousKey(kh uint64) keyHash {
	return keyHash{a: mixHash(kh, 0x2545f4914f6cdd1d), b: mixHash(kh, 0x632be59bd9b4e019) | 1}
}

// unit is the rendezvous hash of the key and a unit: (a XOR unitMix(unit)) × b
// mod 2^64, one xor and one multiply, so that a Plan can afford it for every
// candidate; only its top rendezvousBits rank. It is uniform for each unit,
// as x = a XOR mix is and multiplying by an odd b permutes the integers mod
// 2^64; and the hashes of different units are independent, b being
// independent of a and x changing with the key for every unit.
// TestRendezvousSharesFollowWeights and TestRendezvousHashesAreIndependent
// measure both (and fail a weaker hash such as mix × b, which keeps the
// ratio of two units' hashes the same for every key).
func (k keyHash) unit(mix uint64) uint64 { return (k.a ^ mix) * k.b }

// unitMix is the part of the rendezvous hash that depends on the unit alone
// (the splitmix64 output for its id); a Plan computes it once per unit.
func unitMix(u tradeunit.UnitID) uint64 { return mixHash(uint64(u)*0x9e3779b97f4a7c15, 0) }

// mixHash is the splitmix64 finalizer of kh XOR mix.
func mixHash(kh, mix uint64) uint64 {
	z := kh ^ mix
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// rendezvousBits of the hash rank units: h >> rendezvousShift.
const (
	rendezvousBits  = 52
	rendezvousShift = 64 - rendezvousBits
)

// rendezvousScore is the weighted rendezvous score -weight/ln(u) of a unit
// whose hash has top bits h, u = (h + ½)/2^52: exact in a float64 and in
// (0, 1), so the log is finite and negative. It grows with h.
func rendezvousScore(weight float64, h uint64) float64 {
	return -weight / math.Log((float64(h)+0.5)/(1<<rendezvousBits))
}

// scoreFloor is a top-bits hash below which a unit of the given weight
// scores less than s (0 if it finds none). The u that scores exactly s is
// e^-x, x = weight/s; the floor takes 1 - x + x²/2 - x³/6 instead, which is
// below e^-x for every x ≥ 0 and within x⁴/24 of it, less a margin (a
// millionth of 1-u, plus 2^-40) far above the rounding of the scores, so it
// never skips a unit that scores s.
func scoreFloor(weight, s float64) uint64 {
	x := weight / s
	u := 1 - x*(1-x/2*(1-x/3))
	u -= (1-u)*0x1p-20 + 0x1p-40
	if !(u > 0) {
		return 0
	}
	return uint64(u * (1 << rendezvousBits))
}
