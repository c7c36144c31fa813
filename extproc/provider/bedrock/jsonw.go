package bedrock

import "unsafe"

// bstr views b as a string without copying; gjson results taken from it are
// valid only while b is unchanged, and every use here consumes them first.
func bstr(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
