// Package examples holds lepton's runnable example projects; `lepton init
// -template NAME` writes them from the copies embedded here.
package examples

import "embed"

// Templates are the example projects, by directory name. Only configuration,
// data and README files are embedded, never state.
//
//go:embed quickstart/*.lep.hcl quickstart/README.md quickstart/digit.json
//go:embed q-learning/*.lep.hcl q-learning/README.md
//go:embed transfer-learning/*.lep.hcl transfer-learning/README.md
//go:embed datasets/*.lep.hcl datasets/README.md datasets/data/*.csv
var Templates embed.FS
