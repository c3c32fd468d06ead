// Package config is pgtwin's configuration file: its defaults, parsing and
// validation. Every key of shared/SPEC.md lives here, and config.example.toml
// documents each one with its default.
//
// It is a leaf package: it knows the shape of the file and the rules each value
// must follow, and nothing of engines, branches, syncing or masking. Values with
// meaning to one component (masking rules, say) are parsed further by that
// component.
package config
