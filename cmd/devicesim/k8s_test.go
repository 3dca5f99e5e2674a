package main

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/hubkit/hubkit/internal/loadgen"
)

// The Kubernetes Indexed Job of deploy/k8s runs devicesim load with valid
// flags on every pod, and its --shard count is its completions, with the
// index taken from the Job controller's annotation: the pods cover the
// fleet exactly once.
func TestK8sJobManifest(t *testing.T) {
	data, err := os.ReadFile("../../deploy/k8s/devicesim-load-job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var job struct {
		Spec struct {
			CompletionMode string `json:"completionMode"`
			Completions    int    `json:"completions"`
			Parallelism    int    `json:"parallelism"`
			Template       struct {
				Spec struct {
					Containers []struct {
						Args []string `json:"args"`
						Env  []struct {
							Name      string `json:"name"`
							ValueFrom struct {
								FieldRef struct {
									FieldPath string `json:"fieldPath"`
								} `json:"fieldRef"`
							} `json:"valueFrom"`
						} `json:"env"`
					} `json:"containers"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &job); err != nil {
		t.Fatal(err)
	}
	spec := job.Spec
	if spec.CompletionMode != "Indexed" || spec.Completions < 1 || spec.Parallelism != spec.Completions {
		t.Fatalf("completionMode %q, completions %d, parallelism %d; want Indexed and all shards at once", spec.CompletionMode, spec.Completions, spec.Parallelism)
	}
	if len(spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(spec.Template.Spec.Containers))
	}
	c := spec.Template.Spec.Containers[0]
	index := ""
	for _, e := range c.Env {
		if e.ValueFrom.FieldRef.FieldPath == "metadata.annotations['batch.kubernetes.io/job-completion-index']" {
			index = e.Name
		}
	}
	if index == "" {
		t.Fatal("no environment variable reads the job-completion-index annotation")
	}
	shardArg := "--shard=$(" + index + ")/" + strconv.Itoa(spec.Completions)
	found := false
	for _, a := range c.Args {
		found = found || a == shardArg
	}
	if !found || len(c.Args) == 0 || c.Args[0] != "load" {
		t.Fatalf("args %q, want load ... %s", c.Args, shardArg)
	}
	t.Setenv(envLoadConnectionString, "HostName=myhub.azure-devices.net;SharedAccessKeyName=device;SharedAccessKey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	for i := range spec.Completions {
		args := make([]string, len(c.Args)-1)
		for j, a := range c.Args[1:] {
			args[j] = strings.ReplaceAll(a, "$("+index+")", strconv.Itoa(i))
		}
		cmd := newLoadCmd(&streams{})
		if err := cmd.ParseFlags(args); err != nil {
			t.Fatalf("pod %d: %v", i, err)
		}
		if err := cmd.PreRunE(cmd, nil); err != nil {
			t.Fatalf("pod %d: %v", i, err)
		}
		if s, err := loadgen.ParseShard(cmd.Flag("shard").Value.String()); err != nil || s != (loadgen.Shard{Index: i, Count: spec.Completions}) {
			t.Fatalf("pod %d: --shard %v, %v", i, s, err)
		}
	}
}
