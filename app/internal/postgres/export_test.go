package postgres

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ReadExec runs sql on the read pool.
func (db *DB) ReadExec(ctx context.Context, sql string) error {
	_, err := db.reads.Exec(ctx, sql)
	return err
}

// HoldAll takes every connection of the read pool (reads) or of the work's pool, until the returned func gives them
// back.
func (db *DB) HoldAll(ctx context.Context, reads bool) (release func(), err error) {
	p := db.pool
	if reads {
		p = db.reads
	}
	var held []*pgxpool.Conn
	release = func() {
		for _, c := range held {
			c.Release()
		}
	}
	for range p.Config().MaxConns {
		c, err := p.Acquire(ctx)
		if err != nil {
			release()
			return nil, err
		}
		held = append(held, c)
	}
	return release, nil
}
