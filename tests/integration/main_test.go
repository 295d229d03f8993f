package integration

import (
	"os"
	"testing"

	"github.com/argocontroller/resume-trigger/tests/rig"
)

func TestMain(m *testing.M) { os.Exit(rig.Main(m)) }
