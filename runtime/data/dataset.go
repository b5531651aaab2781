package data

import "github.com/leptonml/lepton/runtime/data/dataset"

// The dataset types live in runtime/data/dataset, which needs no source (and
// so no cloud SDK); these names keep this package's API.
type (
	Matrix      = dataset.Matrix
	ColumnStats = dataset.ColumnStats
	StepReport  = dataset.StepReport
	Dataset     = dataset.Dataset
	Histogram   = dataset.Histogram
)

// MaxClasses bounds how many distinct integer values a numeric label may have
// and still be offered as classes.
const MaxClasses = dataset.MaxClasses

func countList(m map[string]int) string { return dataset.CountList(m) }
