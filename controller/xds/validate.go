package xds

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

// ValidateDeep runs ValidateAll on m and on every message packed in an Any
// inside it, which the generated validators do not unpack themselves, so
// a bad typed_config is refused by the controller (and by tests) rather
// than NACKed by every Envoy.
func ValidateDeep(m proto.Message) error {
	type validator interface{ ValidateAll() error }
	if a, ok := m.(*anypb.Any); ok {
		inner, err := a.UnmarshalNew()
		if err != nil {
			return fmt.Errorf("unpack %s: %w", a.GetTypeUrl(), err)
		}
		return ValidateDeep(inner)
	}
	if v, ok := m.(validator); ok {
		if err := v.ValidateAll(); err != nil {
			return err
		}
	}
	var errs []error
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					errs = append(errs, ValidateDeep(mv.Message().Interface()))
					return true
				})
			}
		case fd.IsList():
			if fd.Message() != nil {
				for i := 0; i < v.List().Len(); i++ {
					errs = append(errs, ValidateDeep(v.List().Get(i).Message().Interface()))
				}
			}
		case fd.Message() != nil:
			errs = append(errs, ValidateDeep(v.Message().Interface()))
		}
		return true
	})
	return errors.Join(errs...)
}
