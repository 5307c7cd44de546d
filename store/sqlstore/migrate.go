package sqlstore

import (
	"embed"
	"io/fs"

	"tradeunit/store/internal/sqldb"
)

// migrations holds the versioned schema, one directory per dialect, files
// named NNNN_description.sql and applied in order (see sqldb.Migrate).
//
//go:embed migrations
var migrations embed.FS

// schema is a unit's schema; its versions are in schema_migrations.
var schema = sqldb.Schema{FS: mustSub(migrations, "migrations"), Table: "schema_migrations"}

func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err)
	}
	return sub
}
