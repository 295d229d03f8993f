package argo

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestPauses(t *testing.T) {
	env := func(kv ...string) []corev1.EnvVar {
		var out []corev1.EnvVar
		for i := 0; i < len(kv); i += 2 {
			out = append(out, corev1.EnvVar{Name: kv[i], Value: kv[i+1]})
		}
		return out
	}
	fromSecret := corev1.EnvVar{Name: EnvPauseAfter, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{Key: "k"}}}
	tests := map[string]struct {
		env  []corev1.EnvVar
		want bool
	}{
		"true pauses":                       {env: env(EnvPauseAfter, "true"), want: true},
		"only the exact value true":         {env: env(EnvPauseAfter, "True")},
		"1 does not pause":                  {env: env(EnvPauseAfter, "1")},
		"absent":                            {env: env("OTHER", "true")},
		"the last of duplicates wins":       {env: env(EnvPauseAfter, "true", EnvPauseAfter, "false")},
		"a later true wins over an earlier": {env: env(EnvPauseAfter, "false", EnvPauseAfter, "true"), want: true},
		"set from a Secret is not read":     {env: []corev1.EnvVar{fromSecret}},
		"a Secret after a literal wins":     {env: append(env(EnvPauseAfter, "true"), fromSecret)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Pauses(corev1.Container{Env: tc.env}, EnvPauseAfter); got != tc.want {
				t.Errorf("Pauses = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMountsVarRunArgo(t *testing.T) {
	tests := map[string]struct {
		mounts []corev1.VolumeMount
		want   bool
	}{
		"the whole volume":     {mounts: []corev1.VolumeMount{{Name: VolumeVarRunArgo, MountPath: VarRunArgo}}, want: true},
		"with a subPath":       {mounts: []corev1.VolumeMount{{Name: VolumeVarRunArgo, MountPath: VarRunArgo, SubPath: "ctr"}}},
		"elsewhere":            {mounts: []corev1.VolumeMount{{Name: VolumeVarRunArgo, MountPath: "/argo"}}},
		"another volume there": {mounts: []corev1.VolumeMount{{Name: "other", MountPath: VarRunArgo}}},
		"none":                 {},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := MountsVarRunArgo(corev1.Container{VolumeMounts: tc.mounts}); got != tc.want {
				t.Errorf("MountsVarRunArgo = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestIsArgoContainer(t *testing.T) {
	for name, want := range map[string]bool{
		"wait": true, "init": true, "supervisor": true, "init-artifact-0": true, "artifact-plugin-s3": true,
		"main": false, "waiter": false, "initializer": false, "sidecar": false,
	} {
		if got := IsArgoContainer(name); got != want {
			t.Errorf("IsArgoContainer(%q) = %v, want %v", name, got, want)
		}
	}
}
