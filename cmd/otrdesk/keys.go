package main

func cmdKeys(c *cli, args []string) error {
	return usagef("keys: not yet available in this build")
}
