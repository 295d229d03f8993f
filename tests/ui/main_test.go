package ui

import (
	"os"
	"testing"

	"github.com/argocontroller/resume-trigger/tests/internal/rig"
)

func TestMain(m *testing.M) { os.Exit(rig.Main(m)) }
