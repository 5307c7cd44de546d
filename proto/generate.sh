#!/usr/bin/env bash
# generate.sh regenerates the Go code of the unit RPC contract:
#   proto/tradeunit/v1/unit.proto -> rpc/unitpb/unit.pb.go, rpc/unitpb/unit_grpc.pb.go
#
# Run it from anywhere (`bash proto/generate.sh`, or `go generate ./rpc/`).
# The protoc plugins are pinned so that regenerating never changes the code
# unless the pins change; they are installed into $(go env GOPATH)/bin when
# missing or at another version, and protoc is pointed at exactly those
# binaries so an older plugin elsewhere on PATH cannot be picked up.
# protoc itself comes from the system (Debian protobuf-compiler, 3.21).
set -euo pipefail

PROTOC_GEN_GO_VERSION=v1.36.12     # google.golang.org/protobuf; matches go.mod
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2  # google.golang.org/grpc/cmd/protoc-gen-go-grpc

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
bin="$(go env GOPATH)/bin"
export PATH="$bin:$PATH"

command -v protoc >/dev/null || {
	echo "generate.sh: protoc not found; install protobuf-compiler" >&2
	exit 1
}

# ensure_plugin NAME PACKAGE VERSION installs PACKAGE@VERSION into $bin unless
# $bin/NAME --version already reports VERSION (with or without the "v").
ensure_plugin() {
	local name=$1 pkg=$2 version=$3 have=""
	if [[ -x "$bin/$name" ]]; then
		have="$("$bin/$name" --version 2>/dev/null | awk '{print $NF}')"
	fi
	if [[ "v${have#v}" != "$version" ]]; then
		echo "generate.sh: installing $pkg@$version into $bin" >&2
		# Outside the module, so the install does not touch go.mod/go.sum.
		(cd / && GOBIN="$bin" GOFLAGS=-buildvcs=false go install "$pkg@$version")
	fi
}

ensure_plugin protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go "$PROTOC_GEN_GO_VERSION"
ensure_plugin protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION"

# module=tradeunit strips the module path from go_package
# ("tradeunit/rpc/unitpb"), so the files land in $root/rpc/unitpb.
cd "$root"
mkdir -p rpc/unitpb
protoc \
	--proto_path=proto \
	--plugin=protoc-gen-go="$bin/protoc-gen-go" \
	--plugin=protoc-gen-go-grpc="$bin/protoc-gen-go-grpc" \
	--go_out=. --go_opt=module=tradeunit \
	--go-grpc_out=. --go-grpc_opt=module=tradeunit \
	proto/tradeunit/v1/unit.proto
