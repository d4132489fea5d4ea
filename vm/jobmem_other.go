//go:build !linux

package vm

import "errors"

// Without Linux's memfd, a job's memory is a growable slice.
func mapJobMemory(*image, uint64, *jobState) (*sliceJobMemory, error) {
	return nil, errors.New("not supported")
}

// imageBytes is the initial memory an image holds.
func imageBytes(img *image) []byte { return img.data }
