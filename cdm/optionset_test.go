package cdm_test

import (
	"testing"

	"github.com/lakelink/lakelink"
	"github.com/lakelink/lakelink/cdm"
)

func TestOptionsetMetadata(t *testing.T) {
	for _, tt := range []struct {
		name     string
		entities []cdm.OptionsetEntity
		want     string
		err      bool
	}{
		{name: "none", entities: []cdm.OptionsetEntity{{Folder: "t", Columns: []lakelink.Column{{Name: "a"}}}}, want: ""},
		{
			name: "labels in order, quoted",
			entities: []cdm.OptionsetEntity{
				{Folder: "orders", Columns: []lakelink.Column{{Name: "id"}, {Name: "status", Options: []string{"new", `say "hi", then`, ""}}}},
				{Folder: "users", Columns: []lakelink.Column{{Name: "mood", Options: []string{"😀"}}}},
			},
			want: `"orders","status",1,False,1033,"new"` + "\n" +
				`"orders","status",2,False,1033,"say ""hi"", then"` + "\n" +
				`"orders","status",3,False,1033,""` + "\n" +
				`"users","mood",1,False,1033,"😀"` + "\n",
		},
		{name: "bad label", entities: []cdm.OptionsetEntity{{Folder: "t", Columns: []lakelink.Column{{Name: "c", Options: []string{"\xff"}}}}}, err: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cdm.OptionsetMetadata(tt.entities)
			if (err != nil) != tt.err {
				t.Fatalf("err = %v, want error %v", err, tt.err)
			}
			if string(got) != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}
