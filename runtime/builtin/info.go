package builtin

import (
	"fmt"
	"strconv"
)

// Info is what a plan needs to know of a built-in dataset without loading
// its rows: its column names (the features, then "label"), its classes and
// its image shape.
type Info struct {
	Features   []string
	Classes    []string
	ImageShape []int
	Rows       int
	TrainRows  int // the standard training split's rows, first; 0: none
	Source     string
	License    string
}

// Describe returns a built-in dataset's Info. mnist's is computed (its rows
// are 70,000 compressed images); iris's is read from its small table.
func Describe(name string) (Info, error) {
	switch name {
	case "mnist":
		in := Info{Features: make([]string, 28*28), ImageShape: []int{1, 28, 28}, Rows: 70000, TrainRows: 60000, Source: mnistSource, License: mnistLicense}
		for i := range in.Features {
			in.Features[i] = "pixel" + strconv.Itoa(i)
		}
		for d := 0; d < 10; d++ {
			in.Classes = append(in.Classes, strconv.Itoa(d))
		}
		return in, nil
	case "iris":
		t, err := loadIris()
		if err != nil {
			return Info{}, err
		}
		return Info{Features: t.Features, Classes: t.Classes(), Rows: t.Rows, Source: t.Source, License: t.License}, nil
	}
	return Info{}, fmt.Errorf("%w %q (built-in datasets: %v)", ErrUnknown, name, Names())
}
