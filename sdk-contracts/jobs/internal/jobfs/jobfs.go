// Package jobfs is what the example jobs share about a job's file system
// (docs/jobs-abi.md): inputs under /in.
package jobfs

import (
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
)

// ListInputs returns the regular files under inDir as slash-separated
// paths relative to it, sorted bytewise. A missing inDir is a job without
// inputs.
func ListInputs(inDir string) ([]string, error) {
	var names []string
	err := filepath.WalkDir(inDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == inDir && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if d.Type().IsRegular() {
			rel, err := filepath.Rel(inDir, path)
			if err != nil {
				return err
			}
			names = append(names, filepath.ToSlash(rel))
		}
		return nil
	})
	// WalkDir's order is per directory ("a" and its files before "a.txt");
	// a flat sort is the order a user reads in the listing.
	slices.Sort(names)
	return names, err
}
