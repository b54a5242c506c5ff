package cdm

import (
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/lakelink/lakelink"
)

// OptionsetPath is the file that lists the labels of every enum-like
// column of the lake's tables.
const OptionsetPath = OptionsetFolder + "/OptionsetMetadata.csv"

// OptionsetEntity is one table's enum-like columns, for OptionsetMetadata.
type OptionsetEntity struct {
	Folder  string // the entity (table folder) name
	Columns []lakelink.Column
}

// OptionsetMetadata returns the content of OptionsetPath: header-less CSV
// in the lake's dialect with the columns existing readers expect, EntityName,
// OptionSetName, Option, IsUserLocalizedLabel, LocalizedLabelLanguageCode,
// LocalizedLabel: one record per label of each column with Options, its
// Option the label's 1-based position in the source's order, the label
// language 1033 (the service's default; the labels are the source's own
// text). A table's CSV holds the label itself, not the number. Nil when no
// column has options.
func OptionsetMetadata(entities []OptionsetEntity) ([]byte, error) {
	var b []byte
	for _, e := range entities {
		for _, c := range e.Columns {
			for i, label := range c.Options {
				if !utf8.ValidString(e.Folder) || !utf8.ValidString(c.Name) || !utf8.ValidString(label) {
					return nil, fmt.Errorf("cdm: option set of %s column %s: name or label is not valid UTF-8", quoteShort(e.Folder), quoteShort(c.Name))
				}
				b = AppendString(b, e.Folder)
				b = append(b, ',')
				b = AppendString(b, c.Name)
				b = append(b, ',')
				b = strconv.AppendInt(b, int64(i+1), 10)
				b = append(b, ",False,1033,"...)
				b = AppendString(b, label)
				b = append(b, '\n')
			}
		}
	}
	return b, nil
}
