package main

import (
	"fmt"
	"strings"

	"github.com/leptonml/lepton/runtime/builtin"
)

// builtinPrefix names a built-in dataset to `lepton show` (builtin.iris):
// its column names are what label and features refer to, and a user needs
// them before anything is applied.
const builtinPrefix = "builtin."

// showBuiltin prints a built-in dataset's columns, label, classes and rows.
func showBuiltin(m *meta, arg string) int {
	name := strings.TrimPrefix(arg, builtinPrefix)
	in, err := builtin.Describe(name)
	if err != nil {
		return m.errorf("%v", err)
	}
	w := m.stdout
	fmt.Fprintf(w, "builtin %q: %s (%s)\n\n", name, in.Source, in.License)
	rows := fmt.Sprint(in.Rows)
	if in.TrainRows > 0 {
		rows += fmt.Sprintf(" (the first %d are the standard training split)", in.TrainRows)
	}
	fmt.Fprintf(w, "rows:     %s\n", rows)
	feats := in.Features
	list := strings.Join(feats, ", ")
	if len(feats) > 8 {
		list = strings.Join(feats[:3], ", ") + ", … " + feats[len(feats)-1]
	}
	fmt.Fprintf(w, "features: %d columns: %s\n", len(feats), list)
	if len(in.ImageShape) > 0 {
		fmt.Fprintf(w, "image:    %v per row, raw pixel values 0 to 255 (normalise with preprocess { normalize = \"minmax\" } or \"zscore\")\n", in.ImageShape)
	}
	fmt.Fprintf(w, "label:    label (%d classes: %s)\n", len(in.Classes), strings.Join(in.Classes, ", "))
	return 0
}
