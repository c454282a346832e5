package sensorhub

import "fmt"

// CheckStation returns an error when id is not a valid station id of the
// message contract, ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$, for tools that
// take station ids from users.
func CheckStation(id string) error {
	if !stationNamePattern.MatchString(id) {
		return fmt.Errorf("station %.80q does not match %s", id, stationNamePattern)
	}
	return nil
}

// CheckSensor returns an error when name is not a valid sensor type name,
// ^[a-z][a-z0-9_]{0,63}$, for tools that take sensor names from users.
func CheckSensor(name string) error {
	if !sensorNamePattern.MatchString(name) {
		return fmt.Errorf("sensor %.80q does not match %s", name, sensorNamePattern)
	}
	return nil
}
