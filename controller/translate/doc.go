// Package translate turns a cluster's Weir objects into one extproc
// config. Doc in progress.
package translate
